"""(private package)"""

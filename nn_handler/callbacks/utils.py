"""``nn_handler.callbacks.utils`` of the original's module map: the garbage-collection callbacks
(re-exports)."""

from .garbage import CudaGarbageCollector, SimpleGarbageCollector

__all__ = ["SimpleGarbageCollector", "CudaGarbageCollector"]

"""``python -m nn_handler fit --config run.yaml``: the Lightning CLI (same as ``nn-handler``)."""


def main() -> None:
    """Run the ``nn-handler`` command (the top of the stack, like the CLI: the engine is imported
    only when the command runs, never by importing this module)."""
    from nn_handler.adapters.config.entry import main as run

    run()


if __name__ == "__main__":
    main()

"""``python -m nn_handler fit --config run.yaml``: the Lightning CLI (same as ``nn-handler``)."""

from nn_handler.adapters.config.entry import main

if __name__ == "__main__":
    main()

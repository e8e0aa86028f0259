"""`python -m pipelines.ingest`: console logging first (before Beam's import-time warnings), then
the pipeline's main()."""

from runners import console

console.setup_logging()

from pipelines.ingest.pipeline import main  # noqa: E402  (after the logging set-up, on purpose)

console.exit_process(main())

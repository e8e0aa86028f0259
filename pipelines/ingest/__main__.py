"""`python -m pipelines.ingest`: --help answers without importing Beam; otherwise console logging
first (before Beam's import-time warnings), then the pipeline's main()."""

import sys

from runners import console
from runners.flags import wants_help

if wants_help(sys.argv[1:]):
    from pipelines.ingest import options

    options.help_parser().print_help()
    sys.exit(0)
console.setup_logging()

from pipelines.ingest.pipeline import main  # noqa: E402  (after the logging set-up, on purpose)

console.exit_process(main())

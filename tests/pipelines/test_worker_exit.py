import subprocess
import sys

import pytest

SCRIPT = """
import sys
from pipelines.worker_exit import freeze_at_exit

class Cycle:
    def __del__(self):
        sys.stdout.write("collected at exit\\n")

node = Cycle()
node.self = node  # only a garbage collection can finalise it
del node
if "freeze" in sys.argv:
    freeze_at_exit()
    freeze_at_exit()  # twice: still one handler
"""


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_at_exit_skips_the_final_collection(freeze):
    # Without it the interpreter's last collection finalises the cycle (what costs a Beam
    # worker ~0.4 s at exit); with it, that collection skips everything alive at exit.
    args = [sys.executable, "-c", SCRIPT] + (["freeze"] if freeze else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    assert ("collected at exit" in out) is not freeze

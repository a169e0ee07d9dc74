"""nemg.logs.log_to_file: the rule scripts' stderr and logging in the step's log file."""
import subprocess
import sys

SCRIPT = """
import logging, sys, warnings
from nemg.logs import log_to_file
log_to_file(sys.argv[1], append=sys.argv[2] == "a")
logging.getLogger("nemg.x").info("a record")
warnings.warn("a warning")
print("plain stderr", file=sys.stderr)
"""


def run(path, mode):
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(path), mode], capture_output=True, text=True, check=True)
    assert res.stderr == ""  # nothing reaches the console


def test_log_gets_records_warnings_and_stderr(tmp_path):
    log = tmp_path / "step.log"
    run(log, "w")
    text = log.read_text()
    assert "INFO nemg.x: a record" in text and "UserWarning: a warning" in text and "plain stderr" in text
    run(log, "w")  # a new attempt of an ordinary step starts a new log
    assert log.read_text().count("a record") == 1
    run(log, "a")  # a resumed training job keeps the interrupted attempt's log
    assert log.read_text().count("a record") == 2

"""A cell does not depend on the caller's environment: what a child process of the runner gets.

A matrix started from a cron job, a CI step or `nohup ... &` inherits ignored signals (a
background job of a non-interactive shell ignores SIGINT, so Python installs no
KeyboardInterrupt handler), a blocked signal mask, a strict umask, `PYTHONPATH`/`PYTHONHOME`/
`PYTHONSTARTUP`/`PYTHONWARNINGS`, a locale, a read-only `$HOME`. None of that may reach a cell:

- the environment is built from `ALLOWED` (names) and `ALLOWED_PREFIXES`, plus what the cell
  sets itself (`clean_environ`); `PYTHON*`, `LC_*`, `LANG`, `HOME` never pass;
- `LANG=C.UTF-8`, a fixed `UMASK` (022, given to `Popen(umask=...)`), a `HOME` of the cell's own;
- every signal back to its default disposition and none blocked: `with_default_signals(argv)`
  runs the command through a tiny launcher that resets them and `exec`s it (a `preexec_fn`
  is unsafe in the threaded runner; POSIX `sh` cannot reset a signal ignored on entry).

The runner's own build steps (venvs) use `clean_environ(network=True)`, which also keeps the
proxy and pip index settings that downloading needs.
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Mapping, Optional, Sequence

UMASK = 0o022
LOCALE = "C.UTF-8"

# Names passed through from the caller: where programs are, the temporary directory, who and
# where we are, the Docker client's settings (the cgroup suite drives `docker` from the host).
ALLOWED = (
    "PATH", "TMPDIR", "USER", "LOGNAME", "TZ", "CI",
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
)  # fmt: skip
# Prefixes of the suites' own knobs (SKY_RS_TEST_IMAGE, SKY_RS_PARITY_EXAMPLES, ...).
ALLOWED_PREFIXES = ("SKY_RS_TEST_", "SKY_RS_PARITY_", "HYPOTHESIS_")
# Downloading (base venvs, wheelhouses) also needs these.
NETWORK = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
)  # fmt: skip
NETWORK_PREFIXES = ("PIP_",)  # the index, find-links, certificates, timeouts of pip
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def clean_environ(
    base: Optional[Mapping[str, str]] = None,
    *,
    home: Optional[str] = None,
    network: bool = False,
    extra: Optional[Mapping[str, str]] = None,
) -> Dict[str, str]:
    """The allow-listed part of `base` (default: os.environ), a fixed locale, `extra` on top.

    `home`: the HOME to give (the cell's own); without it HOME is not set at all.
    """
    source = os.environ if base is None else base
    names = ALLOWED + ((*NETWORK, "HOME") if network else ())  # pip's cache lives in HOME
    prefixes = ALLOWED_PREFIXES + (NETWORK_PREFIXES if network else ())
    env = {key: value for key, value in source.items() if key in names or key.startswith(prefixes)}
    env.setdefault("PATH", DEFAULT_PATH)
    env["LANG"] = LOCALE
    if home is not None:
        env["HOME"] = home
    env.update(extra or {})
    return env


# Run by the cell's launcher: every catchable signal to SIG_DFL, none blocked, then exec.
LAUNCHER = (
    "import os, signal, sys\n"
    "for s in signal.valid_signals():\n"
    "    if s not in (signal.SIGKILL, signal.SIGSTOP):\n"
    "        try:\n"
    "            signal.signal(s, signal.SIG_DFL)\n"
    "        except (OSError, ValueError, RuntimeError):\n"
    "            pass\n"
    "signal.pthread_sigmask(signal.SIG_SETMASK, ())\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def with_default_signals(argv: Sequence[str], python: Optional[str] = None) -> List[str]:
    """`argv`, started with default signal dispositions and an empty signal mask.

    The launcher is `python` (default: the runner's own) in isolated mode, so nothing of the
    environment changes what it does; its `exec` keeps the process id.
    """
    return [python or sys.executable, "-I", "-S", "-c", LAUNCHER, *argv]

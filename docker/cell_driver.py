"""Runs one matrix cell inside its container (mounted read-only, run by the cell's interpreter).

    <python> /opt/sky-rs/cell_driver.py /cell/cell.json

Starts as root, does the root-only set-up (`/` without group bits, see `relax_root_lookup`;
the profile's remount of /proc with hidepid=2), then runs everything else as the cell's user:
copy the read-only suite to a temporary working directory, make a fresh venv layered on the
mounted prepared test environment (or, without one, install the test dependencies into it),
install the wheel with `--no-index` from the mounted wheelhouse, run pytest, then ask the
installed sky_rs which backend it runs.
Writes into /cell: `driver.json` (what happened, per stage), `sky-rs-info.json`, and whatever
the suite left in $SKY_RS_MATRIX_CELL_DIR (the JUnit XML, stats files).

Runs on every CPython the matrix covers (3.8 and later), standard library only.
"""

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

CELL_DIR = "/cell"
RESULT_FILE = "driver.json"
INFO_FILE = "sky-rs-info.json"
# Run in the cell's venv after the tests, isolated (-I) so the working directory can't shadow it.
INFO_SCRIPT = r"""
import json, sys
try:
    import sky_rs
    info = {"file": sky_rs.__file__, "prefix": sys.prefix,
            "backend_info": sky_rs.backend_info(), "stats": sky_rs.stats()}
except Exception as exc:
    info = {"error": "%s: %s" % (type(exc).__name__, exc)}
print(json.dumps(info, default=repr))
"""


def log(message):
    sys.stdout.write(f"[sky-rs cell] {message}\n")
    sys.stdout.flush()


def demote(uid, gid):
    """A preexec_fn that drops root for good: no groups, then gid, then uid."""

    def run():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return run


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for base, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(base, name), uid, gid)


def relax_root_lookup(root="/"):
    """Clear the group bits of `/` (0755 -> 0705); the mode change made, or None.

    With Docker's fuse-overlayfs storage driver the kernel asks the FUSE daemon for `/`'s POSIX
    ACL, uncached, on every path lookup by a user who does not own `/` while its group bits are
    set: ~55 us of CPU a lookup, 12 % of the host's CPU while the trixie cells ran. Without
    group bits the kernel skips the ACL; everyone but root keeps r-x through the "other" bits
    (no one else is in group 0). Done at run time: the container's own top layer sets `/`'s
    mode, not the image.
    """
    mode = stat.S_IMODE(os.stat(root).st_mode)
    if not mode & 0o070:
        return None
    os.chmod(root, mode & ~0o070)
    return f"{mode:04o} -> {mode & ~0o070:04o}"


def signal_name(returncode):
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def give_to_cell_owner(path):
    """Files written into /cell belong to whoever owns /cell on the host, not to root."""
    owner = os.stat(CELL_DIR)
    os.chown(path, owner.st_uid, owner.st_gid)


class Cell:
    def __init__(self, config):
        self.config = config
        self.result = {"stage": "setup", "ok": False, "durations": {}}
        account = pwd.getpwnam(config["user"])
        self.uid, self.gid = account.pw_uid, account.pw_gid
        self.env = dict(os.environ)
        self.env.update(
            HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name, PYTHONNOUSERSITE="1"
        )
        self.preexec = demote(self.uid, self.gid) if self.uid != 0 else None

    def run(self, argv, cwd, **kwargs):
        """Run `argv` as the cell's user (output to the container log unless captured)."""
        log("$ " + " ".join(argv))
        return subprocess.run(
            argv, cwd=cwd, env=self.env, preexec_fn=self.preexec, stdin=subprocess.DEVNULL,
            **kwargs,
        )  # fmt: skip

    def fail(self, stage, message, returncode=None):
        self.result.update(stage=stage, ok=False, error=message, returncode=returncode)
        log(f"{stage} failed: {message}")

    def execute(self):
        config = self.config
        changed = relax_root_lookup()
        if changed:
            self.result["root_mode"] = changed
            log(f"/ mode {changed}")
        if config.get("hidepid"):
            # Root-only, before the uid change that clears our capabilities.
            proc = subprocess.run(
                ["mount", "-o", "remount,hidepid=2", "/proc"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            if proc.returncode != 0:
                return self.fail("setup", "remounting /proc with hidepid=2: " + proc.stdout.strip())
            log("/proc remounted with hidepid=2")

        work = tempfile.mkdtemp(prefix="sky-rs-cell-")
        run_dir = os.path.join(work, "run")
        out = os.path.join(work, "out")
        shutil.copytree(config["suite"], run_dir, symlinks=True)
        os.mkdir(out)
        chown_tree(work, self.uid, self.gid)
        self.env["SKY_RS_MATRIX_CELL_DIR"] = out
        log(f"suite copied to {run_dir}; running as {config['user']} (uid {self.uid})")

        started = time.monotonic()
        self.result["stage"] = "venv"
        venv = os.path.join(work, "venv")
        code = self.run([config["python"], "-m", "venv", "--without-pip", venv], work).returncode
        if code != 0:
            return self.fail("venv", f"python -m venv exited {code}", code)
        venv_python = os.path.join(venv, "bin", "python")
        self.env["PATH"] = os.path.join(venv, "bin") + os.pathsep + self.env.get("PATH", "")
        self.env["VIRTUAL_ENV"] = venv

        self.result["stage"] = "install"
        wheelhouse = config["wheelhouse"]
        pip_wheels = sorted(n for n in os.listdir(wheelhouse) if n.startswith("pip-"))
        if not pip_wheels:
            return self.fail("install", "no pip wheel in the wheelhouse")
        base_sites = config.get("test_env_site_dirs") or []
        if base_sites:
            # The test dependencies are in the prepared environment (read-only): layer it, as
            # the host cells do, with addsitedir so that its .pth files run too.
            own_site = self.own_site_packages(venv_python, work)
            if own_site is None:
                return self.fail("install", "the new venv has no site-packages directory")
            pth = os.path.join(own_site, "_sky_matrix_base.pth")
            with open(pth, "w") as handle:
                handle.writelines(f"import site; site.addsitedir({d!r})\n" for d in base_sites)
            os.chown(pth, self.uid, self.gid)
            what = ["--no-deps", config["wheel"]]
        else:
            what = ["-r", os.path.join(wheelhouse, "requirements.txt"), config["wheel"]]
        # pip runs from its wheel: the venv needs no pip of its own and no ensurepip.
        code = self.run(
            [venv_python, os.path.join(wheelhouse, pip_wheels[-1], "pip"), "install",
             "--no-index", "--find-links", wheelhouse, "--progress-bar", "off", "--no-color",
             "--disable-pip-version-check", *what],
            work,
        ).returncode  # fmt: skip
        if code != 0:
            return self.fail("install", f"pip install --no-index exited {code}", code)
        self.result["durations"]["env"] = round(time.monotonic() - started, 3)

        self.result["stage"] = "tests"
        started = time.monotonic()
        junit = os.path.join(out, "junit.xml")
        code = self.run(
            [venv_python, "-m", "pytest", "--rootdir", run_dir, "--junitxml=" + junit,
             *config["pytest_args"]],
            run_dir,
        ).returncode  # fmt: skip
        self.result["durations"]["tests"] = round(time.monotonic() - started, 3)
        self.result["returncode"] = code
        if code < 0:
            self.result["signal"] = signal_name(code)
        self.result["ok"] = code == 0
        self.collect(out)
        self.write_info(venv_python, work)

    def own_site_packages(self, venv_python, work):
        proc = self.run(
            [venv_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            work, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        path = proc.stdout.strip()
        return path if proc.returncode == 0 and os.path.isdir(path) else None

    def collect(self, out):
        """Copy the suite's outputs to /cell."""
        for name in sorted(os.listdir(out)):
            source = os.path.join(out, name)
            if os.path.isfile(source) and name not in (RESULT_FILE, INFO_FILE):
                target = os.path.join(CELL_DIR, name)
                shutil.copyfile(source, target)
                give_to_cell_owner(target)

    def write_info(self, venv_python, work):
        """Which sky_rs the venv imports and which backend it runs (the host checks both)."""
        env = {k: v for k, v in self.env.items() if not k.startswith("SKYPILOT_")}
        log("checking which backend the installed sky_rs runs")
        proc = subprocess.run(
            [venv_python, "-I", "-c", INFO_SCRIPT], cwd=work, env=env, preexec_fn=self.preexec,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=120,
        )  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        try:
            info = json.loads(lines[-1])
        except (ValueError, IndexError):
            info = {"error": f"exit {proc.returncode}: " + " | ".join(lines[-3:])}
        path = os.path.join(CELL_DIR, INFO_FILE)
        with open(path, "w") as handle:
            json.dump(info, handle)
        give_to_cell_owner(path)


def main():
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    cell = Cell(config)
    try:
        cell.execute()
    except Exception as exc:  # the driver's own failure: reported, never a silent exit
        cell.fail(cell.result.get("stage", "setup"), f"{type(exc).__name__}: {exc}")
    path = os.path.join(CELL_DIR, RESULT_FILE)
    with open(path, "w") as handle:
        json.dump(cell.result, handle)
    give_to_cell_owner(path)
    code = cell.result.get("returncode")
    return code if isinstance(code, int) and code >= 0 else (0 if cell.result["ok"] else 3)


if __name__ == "__main__":
    sys.exit(main())

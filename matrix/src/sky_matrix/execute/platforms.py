"""The platform axis: `host`, and `docker:<image>` through the container modules.

A platform answers three questions for the planner and the scheduler: which
interpreter labels it has (and why one is missing), which profiles a suite runs
under on it, and how to run one cell. The host runs cells itself
(`sky_matrix.execute.host_cell`); a docker platform builds its image once, then hands
each cell to `sky_matrix.execute.container_cell.run_cell`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

from sky_matrix.build import venvs
from sky_matrix.config import architectures, profiles
from sky_matrix.config.profiles import DEFAULT_PROFILE
from sky_matrix.core.model import Cell, CellResult, Interpreter
from sky_matrix.docker import emulation, images
from sky_matrix.execute import container_cell
from sky_matrix.execute.context import RunContext
from sky_matrix.execute.host_cell import run_host_cell
from sky_matrix.plan.discovery import Discovery, planned_labels
from sky_matrix.plan.platform import HOST, Platform, Slot

Log = Callable[[str], None]


class RunnablePlatform(Platform):
    """A planned platform that can also prepare and run its cells."""

    # True: `prepare` builds something slow (an image), done in the background while other
    # platforms' cells run; this platform's cells wait for it.
    prepares_in_background: bool = False
    uses_host_wheel: bool = False  # the run builds the host wheel before any cell starts

    def prepare(self, ctx: RunContext) -> Optional[str]:
        """Build what the cells need; the reason when that failed, else None."""
        return None

    def prepared_skip(self) -> Optional[str]:
        """After `prepare`: why this platform's cells cannot run on this host (recorded as
        skipped, not as errors: the host lacks something the runner could not provide)."""
        return None

    def prepare_ahead(self, ctx: RunContext, slots: Sequence[Slot], log: Log) -> int:
        """`--prepare-only`: make what `slots`' cells will need; how many things failed."""
        why = self.prepare(ctx)
        if why:
            log(f"[red]{self.name}: {why}[/]")
        return 1 if why else 0

    def run_cell(self, cell: Cell, slot: Slot, ctx: RunContext, workers: int) -> CellResult:
        raise NotImplementedError

    def stop_all(self, ctx: RunContext) -> None:
        """The run is being stopped: end what this platform runs that `ctx.kill_all` cannot
        reach (host cells are process groups in `ctx`, so the host needs nothing more)."""


class HostPlatform(RunnablePlatform):
    name = HOST
    interpreters_are_installed_by_user = True
    uses_host_wheel = True

    def __init__(self, discovery: Discovery) -> None:
        self.discovery = discovery
        self.architecture = architectures.host_architecture()

    def slots(self) -> Dict[str, Slot]:
        found = self.discovery.interpreters
        slots: Dict[str, Slot] = {}
        for label in planned_labels(found):
            if label in found:
                slots[label] = Slot(label, found[label])
                continue
            broken = [
                r.reason
                for r in self.discovery.rejected
                if r.version and _label_of(r.version) == label and r.reason.startswith("broken")
            ]
            slots[label] = Slot(label, None, broken[0] if broken else "not found")
        return slots

    def profiles(self, suite: str) -> List[str]:
        return [DEFAULT_PROFILE]

    def prepare_ahead(self, ctx: RunContext, slots: Sequence[Slot], log: Log) -> int:
        """The host wheel, then one cached base venv per interpreter."""
        log(f"wheel: {ctx.ensure_host_wheel()}")
        failures = 0
        seen: Set[str] = set()
        for slot in slots:
            interp = slot.interpreter
            if interp is None or interp.short in seen:
                continue
            seen.add(interp.short)
            try:
                base = venvs.ensure_base_env(interp, ctx.requirements, ctx.env_cache, log=log)
                log(f"env {interp.short}: {'cached' if base.cached else 'built'} {base.path}")
            except venvs.EnvError as exc:
                failures += 1
                log(f"[red]env {interp.short}: {exc}[/]")
        return failures

    def run_cell(self, cell: Cell, slot: Slot, ctx: RunContext, workers: int) -> CellResult:
        assert slot.interpreter is not None
        return run_host_cell(cell, slot.interpreter, ctx, workers)


def _label_of(version: str) -> str:
    return ".".join(version.split(".")[:2])


class DockerPlatform(RunnablePlatform):
    """One image. Its interpreters are the image's, known for sure once it is built."""

    prepares_in_background = True

    def __init__(self, image: str, docker_unusable: Optional[str]) -> None:
        self.image = image
        self.name = f"docker:{image}"
        self.spec = images.IMAGES[image]
        self.optional_because = self.spec.optional_because
        self.architecture = self.spec.machine
        if self.spec.emulated:
            # Hours for the whole platform: run when named (`--platform docker:<image>`).
            self.opt_in_because = f"emulated platform ({self.architecture} through qemu)"
        self._docker_unusable = docker_unusable
        self.build: Any = None  # images.ImageBuild once prepared
        self._lock = threading.Lock()
        self._prepared = False
        self._failure: Optional[str] = None
        self._skip: Optional[str] = None
        # Emulated images: how much slower than native (emulation.Factor), measured in prepare;
        # their cells' time limits are scaled by it.
        self.emulation: Optional[emulation.Factor] = None

    @property
    def time_factor(self) -> float:
        return self.emulation.factor if self.emulation is not None else 1.0

    def slots(self) -> Dict[str, Slot]:
        if self.build is not None and self.build.ok:
            found: Dict[str, Interpreter] = dict(self.build.pythons)
            slots = {label: Slot(label, interp) for label, interp in found.items()}
            for label in self.spec.pythons:
                slots.setdefault(label, Slot(label, None, f"not in image {self.image}"))
            return slots
        return {label: Slot(label, None, None) for label in self.spec.pythons}

    def profiles(self, suite: str) -> List[str]:
        names = profiles.profiles_for_suite(suite)
        if self.spec.profiles is None:
            return names
        chosen = dict(self.spec.profiles).get(suite, ())
        return [name for name in names if name in chosen]

    def unusable(self) -> Optional[str]:
        if self._docker_unusable:
            return self._docker_unusable
        return emulation.unusable(self.spec.machine) if self.spec.emulated else None

    def prepared_skip(self) -> Optional[str]:
        return self._skip

    def suite_skip(self, suite: str) -> Optional[str]:
        return dict(self.spec.skipped_suites).get(suite)

    def serves_abi3(self) -> bool:
        """Whether an interpreter of this image takes the abi3 container wheel (CPython with the
        GIL); PyPy (`pp3.11`) and free-threaded (`3.14t`) ones get a wheel of their own."""
        return any(not (p.startswith("pp") or "t" in p) for p in self.spec.pythons)

    def prepare(self, ctx: RunContext) -> Optional[str]:
        with self._lock:
            if not self._prepared:
                self._prepared = True
                self._prepare(ctx)
            return self._failure

    def _prepare(self, ctx: RunContext) -> None:
        if self.spec.emulated:
            self._skip = emulation.ensure_emulation(self.spec.machine, log=ctx.log)
            if self._skip:
                return
        self.build = images.ensure_image(self.image, log=ctx.log)
        if not self.build.ok:
            self._failure = f"image {self.image} unavailable: {self.build.error}"
            return
        machine = self.spec.machine
        if self.serves_abi3() and ctx.container_wheel(machine) is None:
            why = ctx.container_wheel_errors.get(machine)
            self._failure = f"no manylinux {machine} wheel for container_cell: {why}"
            return
        if self.spec.emulated:
            self._measure(ctx)

    def _measure(self, ctx: RunContext) -> None:
        """The emulation factor: the image's interpreter against the same version natively
        (the native twin image when it is built, else the runner's own interpreter)."""
        label = next(iter(sorted(self.build.pythons)), None)
        if label is None:
            return
        interp = self.build.pythons[label]
        native = None
        if self.spec.native_twin:
            twin_tag = images.current_image_tag(self.spec.native_twin)
            if twin_tag:
                native = (twin_tag, interp.path)
        try:
            self.emulation = emulation.measure_factor(
                self.spec.machine, (self.build.tag, interp.path), native, log=ctx.log
            )
        except RuntimeError as exc:
            self._failure = f"measuring the emulation factor failed: {exc}"

    def run_cell(self, cell: Cell, slot: Slot, ctx: RunContext, workers: int) -> CellResult:
        assert slot.interpreter is not None
        interp = slot.interpreter
        cell_dir = ctx.paths.cell_dir(cell)
        if self.spec.pure_wheel_because is not None:  # what pip installs where nothing native fits
            wheel, why_not = ctx.pure_wheel()
            if wheel is None:
                return CellResult(cell=cell, verdict="error", reason=why_not, interpreter=interp)
        elif interp.implementation == "cpython" and not interp.free_threaded:
            wheel = ctx.container_wheel(self.spec.machine)
        else:  # PyPy: the abi3 wheel does not load there; one built against this interpreter
            wheel, why_not = ctx.interpreter_wheel(interp, self.build.tag)
            if wheel is None:
                return CellResult(cell=cell, verdict="error", reason=why_not, interpreter=interp)
        assert wheel is not None
        profile = profiles.PROFILES.get(cell.profile)
        memory_note = ""
        if profile is not None:
            workers, memory_note = profile.workers_within_memory(interp.implementation, workers)
        with ctx.staged_suite(cell) as (suite_dir, rel_dirs):
            return container_cell.run_cell(
                cell,
                slot.interpreter,
                self.build,
                wheel,
                suite_dir,
                cell_dir,
                ctx.cell_timeout(cell.suite, self.time_factor),
                [*ctx.suite_pytest_args(cell, workers, self.time_factor), *rel_dirs],
                run_id=ctx.run_id,
                notes=[memory_note] if memory_note else [],
                emulation=self.emulation,
            )

    def stop_all(self, ctx: RunContext) -> None:
        """The containers of this run (their `docker run` CLIs then end on their own)."""
        container_cell.remove_cell_containers(ctx.run_id)


def runnable(platform: Platform) -> RunnablePlatform:
    """The planner speaks of platforms; only the execute layer's can run a cell."""
    if not isinstance(platform, RunnablePlatform):
        raise TypeError(f"platform {platform.name} cannot run cells")
    return platform


def host_and_docker_platforms(
    discovery: Discovery, *, want_docker: bool, log: Callable[[str], None]
) -> List[RunnablePlatform]:
    """`host`, plus one platform per image when the container side is present."""
    platforms: List[RunnablePlatform] = [HostPlatform(discovery)]
    if not want_docker:
        return platforms
    usable, why = images.docker_status()
    for image in images.IMAGES:
        platforms.append(DockerPlatform(image, None if usable else f"docker unusable: {why}"))
    return platforms

"""Self-Instruct's work folder, `datasets/.self-instruct-<name>/`: what a run has done so
far, kept so that an interrupted run resumes where it stopped.

tasks.jsonl holds the kept tasks, appended and flushed one at a time; state.json where the
run is (step, candidate) and what each filter dropped, with the settings the run started
with (a resume must use the same ones); `lock` is held (flock) by the one process working
in the folder, so a second run of the same name stops at once instead of appending to the
same files or losing the folder when the first one finishes. The kernel releases a flock
when its process dies, so a run killed with -9 leaves no lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import orjson

from ...errors import TllmError


def describe_change(key: str, old, new) -> str:
    """How one setting differs from the interrupted run's, in the user's terms."""
    if key == "seeds_sha256":
        return "the seed file's content changed"
    if key == "teacher":
        return f"the teacher was {describe_teacher(old)}, now {describe_teacher(new)}"
    return f"--{key.replace('_', '-')} was {old}, now {new}"


def describe_teacher(identity) -> str:
    """A resolved teacher (see teacher.teacher_identity) in a few words."""
    if not isinstance(identity, dict):  # a work folder from before teachers were resolved
        return repr(identity)
    if "url" in identity:
        where = (
            identity["url"]
            if "model" not in identity
            else f"{identity['model']} ({identity['url']})"
        )
        return f"{identity['remote_model']} at {where}"
    files = (
        f"{identity['gguf']}, {identity['gguf_bytes']} bytes"
        if "gguf" in identity
        else f"{identity['hf_dir']}, fingerprint {identity['fingerprint']}, "
        f"{identity['weight_bytes']} weight bytes"
    )
    adapters = (
        f" with adapters {', '.join(identity['adapters'])}" if identity.get("adapters") else ""
    )
    return f"model {identity['model']} ({files}){adapters}"


class WorkFolder:
    """The kept tasks and the run's state, locked for one process.

    Use as a context manager: entering takes the lock (or refuses), `load()` then reads
    the folder (or starts it), leaving releases the lock. A task line written just before an
    interruption, whose state update never happened, is adopted on resume; a half-written
    line is cut off."""

    def __init__(self, folder: Path, settings: dict):
        self.folder, self.settings = folder, settings
        self.tasks_path, self.state_path = folder / "tasks.jsonl", folder / "state.json"
        self.tasks: list[dict] = []
        self.state: dict = {}
        self._lock: int | None = None

    def __enter__(self) -> WorkFolder:
        self._take_lock()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # --- the lock --------------------------------------------------------------------------
    def _take_lock(self) -> None:
        path = self.folder / "lock"
        while True:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # a finishing run removed the folder just now
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise TllmError(
                    f"a self-instruct run for this dataset is already running "
                    f"(pid {holder}) in {self.folder}; wait for it to finish"
                ) from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            # The run that held it finished and removed the folder between our open and
            # flock: this lock guards nothing, so take a fresh one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock = fd

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    # --- the state -------------------------------------------------------------------------
    def load(self) -> WorkFolder:
        """Read the state and tasks (or start them); refuse other settings than the run's."""
        if not self.state_path.is_file():
            self.state = {
                "settings": self.settings,
                "step": 0,
                "position": 0,
                "dropped_instructions": {},
                "dropped_instances": {},
            }
            self.tasks_path.write_bytes(b"")
            self.save()
            return self
        try:
            self.state = orjson.loads(self.state_path.read_bytes())
        except orjson.JSONDecodeError:
            raise TllmError(
                f"{self.state_path} is damaged; delete {self.folder} to start over"
            ) from None
        old = self.state["settings"]
        if old != self.settings:
            keys = list(self.settings) + [k for k in old if k not in self.settings]
            changed = "; ".join(
                describe_change(key, old.get(key), self.settings.get(key))
                for key in keys
                if old.get(key) != self.settings.get(key)
            )
            raise TllmError(
                f"{self.folder} holds an interrupted run with other settings ({changed}); "
                "run it again as it was to resume, or delete that folder"
            )
        self._load_tasks()
        return self

    def _load_tasks(self) -> None:
        data = self.tasks_path.read_bytes() if self.tasks_path.is_file() else b""
        good = 0
        for line in data.splitlines(keepends=True):
            try:
                task = orjson.loads(line)
            except orjson.JSONDecodeError:
                break
            if not line.endswith(b"\n"):
                break
            good += len(line)
            self.tasks.append(task)
        if good < len(data):
            with open(self.tasks_path, "r+b") as f:
                f.truncate(good)
        last = self.tasks[-1] if self.tasks else None
        if last and (last["step"], last["position"]) >= (
            self.state["step"],
            self.state["position"],
        ):
            self.state.update(step=last["step"], position=last["position"] + 1)
            self.count("instances", last["dropped"])
            self.save()

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
        tmp.replace(self.state_path)

    def keep(self, task: dict, dropped: list[str]) -> None:
        """Append a kept task; its instance drops ride along, for adoption on resume."""
        task = {
            "step": self.state["step"],
            "position": self.state["position"],
            **task,
            "dropped": dropped,
        }
        with open(self.tasks_path, "ab", buffering=0) as f:
            f.write(orjson.dumps(task) + b"\n")
            os.fsync(f.fileno())
        self.tasks.append(task)

    def count(self, level: str, reasons: list[str]) -> None:
        counts = self.state[f"dropped_{level}"]
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1

    def steps_without_progress(self) -> int:
        return self.state["step"] - (self.tasks[-1]["step"] + 1 if self.tasks else 0)

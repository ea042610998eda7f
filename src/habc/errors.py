"""User-facing errors: the CLI prints these as one line, without a traceback."""


class HabcError(Exception):
    """An error caused by the user's input or data, reported as a single line."""


class ConfigError(HabcError):
    """An option value is out of range or inconsistent with another option."""


class StoreError(HabcError):
    """An episode store is missing, truncated or corrupt."""


class UnknownTaskError(HabcError, KeyError):
    """A task name is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown task"


class CheckpointError(HabcError):
    """A checkpoint is missing, corrupt or does not fit the task."""


class WorkerLostError(HabcError):
    """A worker process (or Ray worker) died on each run of an item, or none is left.

    Re-running the command resumes; the message says how the last one ended (an exit code of
    -9 is usually the kernel's out-of-memory killer).
    """

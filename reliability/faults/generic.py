"""Generic faults for anything else: a webhook (an HTTP call on inject and on revert) and a
shell command (e.g. ``docker compose pause redis`` / ``docker compose unpause redis``).

Neither can expire by itself: what they start is up to the other side, so the revert is what
undoes them (at the end, on abort, on signals and on exceptions).

Example::

    fault = ShellFault(ShellSpec(type="shell", inject="docker compose pause redis",
                                 revert="docker compose unpause redis"), "redis-frozen")
"""

from __future__ import annotations

import subprocess
import urllib.parse
from collections.abc import Mapping
from typing import Generic, TypeVar

from reliability.exceptions import FaultError
from reliability.faults.base import FaultCheck, one_line, probe, secrets_of
from reliability.faults.httpcall import call
from reliability.faults.process import command_argv
from reliability.faults.spec import Command, HttpCallSpec, ShellSpec, WebhookSpec
from reliability.masking import mask
from reliability.revert.journal import (
    Undo,
    UndoError,
    command_action,
    http_action,
    reference_secrets,
    secret_headers,
)

OUTPUT_CHARS = 200
Step = TypeVar("Step", HttpCallSpec, Command)


class _TwoStepFault(Generic[Step]):
    """A fault made of an inject step and an optional revert step; revert runs once per inject."""

    kind = ""

    def __init__(self, name: str, inject: Step, revert: Step | None) -> None:
        self.name = name
        self.dead_man_s: float | None = None
        self.injected = False
        self._inject_step: Step = inject
        self._revert_step: Step | None = revert

    def _run(self, action: str, step: Step) -> str:
        raise NotImplementedError

    def inject(self) -> None:
        self.injected = True  # before the step: a revert must undo a step that failed half-way
        self._run("inject", self._inject_step)

    def revert(self) -> None:
        if not self.injected:
            return
        if self._revert_step is not None:
            self._run("revert", self._revert_step)
        self.injected = False


class WebhookFault(_TwoStepFault[HttpCallSpec]):
    """``webhook``: ``inject`` and ``revert`` are HTTP calls (2xx expected); ``verify_url``,
    if set, must answer 2xx for the backend to count as healthy."""

    kind = "webhook"
    not_rechecked_because = "a webhook's effect is on the other side of the URL: nothing here can re-check it"

    def __init__(self, spec: WebhookSpec, name: str) -> None:
        super().__init__(name, spec.inject, spec.revert)
        self.spec = spec
        self._secrets = secrets_of(spec.inject.url, spec.revert.url if spec.revert else None, spec.verify_url) + \
            tuple(v for call_spec in (spec.inject, spec.revert) if call_spec for v in call_spec.headers.values())

    @property
    def backend(self) -> str:
        hook = self.spec.revert or self.spec.inject
        parts = urllib.parse.urlsplit(hook.url)
        return f"webhook {parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """The ``revert`` call, headers that carry credentials by reference to the environment."""
        hook = self.spec.revert
        if hook is None:
            raise UndoError(f"{self.name}: a webhook without a revert call cannot be undone")
        action = http_action(hook.method, hook.url, hook.body, hook.headers, ok_also=(), timeout_s=self.spec.timeout_s)
        secrets = list(secrets_of(hook.url)) + secret_headers(hook.headers)
        return Undo(self.backend, (reference_secrets(action, secrets, environ, self.name),))

    def _run(self, action: str, step: HttpCallSpec) -> str:
        hook = step
        try:
            reply = call(hook.method, hook.url, hook.body, hook.headers, self.spec.timeout_s)
        except OSError as exc:
            raise FaultError(f"{self.name} (webhook) {action}: {one_line(exc, self._secrets)}") from None
        if not reply.ok:
            reason = one_line(ValueError(reply.error_text()), self._secrets)
            raise FaultError(f"{self.name} (webhook) {action}: {reason}")
        return str(reply.status)

    def _healthy(self) -> str:
        if self.spec.verify_url is None:
            return "revert call done, no verify_url to check" if self.spec.revert else "no revert or verify_url"
        reply = call("GET", self.spec.verify_url, timeout_s=self.spec.timeout_s)
        if not reply.ok:
            raise FaultError(reply.error_text())
        return f"verify_url answered {reply.status}"

    def verify(self) -> FaultCheck:
        return probe("webhook", self._healthy, self._secrets)


class ShellFault(_TwoStepFault[Command]):
    """``shell``: ``inject``, ``revert`` and ``verify`` commands; exit status 0 is success."""

    kind = "shell"
    not_rechecked_because = "a shell command's effect is unknown to us: nothing here can re-check it"

    def __init__(self, spec: ShellSpec, name: str) -> None:
        super().__init__(name, spec.inject, spec.revert)
        self.spec = spec

    @property
    def backend(self) -> str:
        revert = self.spec.revert
        return "shell " + (revert if isinstance(revert, str) else " ".join(revert or []))

    def undo(self, environ: Mapping[str, str]) -> Undo:
        """The ``revert`` command (values of secret-looking variables by reference)."""
        if self.spec.revert is None:
            raise UndoError(f"{self.name}: a shell fault without a revert command cannot be undone")
        command = reference_secrets(self.spec.revert, (), environ, self.name)
        backend = reference_secrets(self.backend, (), environ, self.name)
        return Undo(backend, (command_action(command, self.spec.timeout_s),))

    def _run(self, action: str, step: Command) -> str:
        command = step
        try:
            done = subprocess.run(command_argv(command), capture_output=True, text=True, timeout=self.spec.timeout_s,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise FaultError(f"{self.name} (shell) {action}: timed out after {self.spec.timeout_s:g}s") from None
        except OSError as exc:
            raise FaultError(f"{self.name} (shell) {action}: {one_line(exc)}") from None
        output = mask(" ".join((done.stdout + " " + done.stderr).split()))[:OUTPUT_CHARS]
        if done.returncode != 0:
            detail = f"exit {done.returncode}" + (f": {output}" if output else "")
            raise FaultError(f"{self.name} (shell) {action}: {detail}")
        return output

    def _healthy(self) -> str:
        if self.spec.verify is None:
            return "revert command ran, no verify command" if self.spec.revert else "no revert or verify command"
        output = self._run("verify", self.spec.verify)
        return "verify command exited 0" + (f": {output}" if output else "")

    def verify(self) -> FaultCheck:
        return probe("shell", self._healthy)

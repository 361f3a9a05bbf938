"""The code that runs inside a sandbox, and the command line that starts it there.

Every module of this package but this one runs under whatever interpreter the sandbox uses,
without chattasks installed, and where the files of chattasks may be hidden: they use the
standard library only and import each other relatively. `command` sends their source on the
command line, and a short loader run with ``python -I -c`` makes them a package again inside:

- ``protocol``  the length-prefixed JSON messages between host and fork server
- ``cleanup``   removing what a program wrote
- ``child``     the forked child: set-up, the program's run, the verdict
- ``server``    the fork server: one child per request, watched, killed, cleaned up
- ``readonly``  the set-up of the ``unshare-ro`` fallback, run before the fork server starts
"""

from __future__ import annotations

import json
from pathlib import Path

MODULES = ("protocol", "cleanup", "child", "server", "readonly")
"""The modules that run inside, each after the ones it imports; a command sends the module it
runs and those before it."""

_PACKAGE = "chattasks_sandbox"
_LOADER = f"""\
import json, sys, types
sources, entry = json.loads(sys.argv[1]), sys.argv[2]
del sys.argv[1:3]
package = types.ModuleType({_PACKAGE!r})
package.__path__ = []
sys.modules[package.__name__] = package
for name, source in sources:
    module = types.ModuleType(f"{{package.__name__}}.{{name}}")
    module.__package__ = package.__name__
    sys.modules[module.__name__] = module
    exec(compile(source, f"<sandbox {{name}}>", "exec"), module.__dict__)
sys.modules[f"{{package.__name__}}.{{entry}}"].main()
"""


def command(python: str, entry: str, *args: str) -> list[str]:
    """The command line that runs ``main()`` of module `entry` of this package under `python`,
    with ``sys.argv[1:]`` set to `args`."""
    if entry not in MODULES:
        raise ValueError(f"no module {entry!r} runs inside the sandbox (known: {', '.join(MODULES)})")
    folder = Path(__file__).parent
    needed = MODULES[: MODULES.index(entry) + 1]
    sources = [(name, (folder / f"{name}.py").read_text(encoding="utf-8")) for name in needed]
    return [python, "-I", "-c", _LOADER, json.dumps(sources), entry, *args]

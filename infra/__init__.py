"""Everything around the functions: the shared model, the CDKTF stack, the local stack,
the gallery and the operator tools (docs/architecture.md, "Layout").

Importing `infra` must stay cheap: only `infra.deploy` imports cdktf. The functions'
settings contract (`image_pipeline.settings`) is read from the deploy root `functions/`,
which is put on the path here so every entry point finds it.
"""

import sys
from pathlib import Path

_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.append(_FUNCTIONS)

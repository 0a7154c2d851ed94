"""Deployment of the pipeline: config, topology, checks, the CDKTF stack and the local harness.

Importing `infra` must stay cheap: only the stack modules (`infra.stack`, `infra.constructs`)
import cdktf. The functions' settings contract (`image_pipeline.settings`) is read from the
deploy root `functions/`, which is put on the path here so every entry point finds it.
"""

import sys
from pathlib import Path

_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.append(_FUNCTIONS)

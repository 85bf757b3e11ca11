"""Loads the compiled extension (which registers torch.ops.embedfast.*) with a helpful error if it is missing."""
import torch  # noqa: F401  (libtorch must be loaded before the extension)

try:
    from . import _C  # noqa: F401
except ImportError as exc:  # pragma: no cover - only when the package was not built
    raise ImportError(
        "embedfast's compiled extension embedfast._C is missing or does not match the installed torch "
        f"({torch.__version__}). Build it with `make build` or `pip install --no-build-isolation -e .`. "
        f"Original error: {exc}"
    ) from exc

ops = torch.ops.embedfast

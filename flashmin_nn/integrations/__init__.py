"""Adapters that plug flashmin into other libraries.

Each submodule imports its library when it is imported itself, never before:
`import flashmin_nn` does not import transformers.

- `flashmin_nn.integrations.transformers`: flashmin as a transformers 5.x attention
  implementation, plus `patch_gpt2`, `patch_model`, `unpatch` and `patched`.
- `flashmin_nn.integrations.patching`: where those four (and `is_patched`) are defined; it
  imports `flashmin_nn.integrations.transformers`, never the other way round at import time.

`import flashmin_nn` still makes `attn_implementation="fmin_attention"` work for a user who never
imports the integration: `register_with_transformers` (called by flashmin_nn/__init__.py) imports
the integration at once when transformers' modeling_utils is already loaded, and otherwise leaves
a finder on sys.meta_path that finds nothing itself but runs the registration right after
modeling_utils has been imported (every model class, and from_pretrained, needs that module, and
it is where AttentionInterface lives). A user who never imports transformers pays one finder
that answers None for every other module name.
"""
import importlib.abc
import sys
import warnings

_TRANSFORMERS_MODULE = "transformers.modeling_utils"


def register_with_transformers():
    """Register flashmin with transformers now if it is loaded, else as soon as it is (idempotent)."""
    if _TRANSFORMERS_MODULE in sys.modules:
        _register()
    elif not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())


def _register():
    try:
        import transformers

        if int(transformers.__version__.split(".")[0]) < 5:
            return      # the integration needs transformers 5; importing it says so, explicitly
        from . import transformers as _hf  # noqa: F401  (registers on import)
    except Exception as e:  # never break the user's own import of transformers
        warnings.warn(f"flashmin: could not register attn_implementation='fmin_attention' with transformers "
                      f"({type(e).__name__}: {e}); `import flashmin_nn.integrations.transformers` shows the error",
                      stacklevel=2)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds no module itself. Asked for transformers.modeling_utils, it removes itself, lets the
    other finders find the module, and wraps the loader so that flashmin registers once the module
    has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TRANSFORMERS_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _LoaderThenRegister(spec.loader)
        return spec


class _LoaderThenRegister(importlib.abc.Loader):
    """The module's own loader, plus the registration after exec_module; anything else (get_source,
    get_resource_reader, ...) is the original loader's."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name):
        return getattr(self._loader, name)

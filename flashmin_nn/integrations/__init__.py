"""Adapters that plug flashmin into other libraries.

Each submodule imports its library when it is imported itself, never before:
`import flashmin_nn` does not import transformers.

- `flashmin_nn.integrations.transformers`: flashmin as a transformers 5.x attention
  implementation, plus `patch_gpt2`, `patch_model`, `unpatch` and `patched`.
"""

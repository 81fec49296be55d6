"""Text variants of the methods: same names as the image ones (``--method ig,shap``), one file
each, registered for the "text" modality. Importing this package registers them all."""

from xai_cli.methods.text import attention, counterfactual, ig, lime, saliency, shap, transformer_attribution  # noqa: F401
from xai_cli.methods.text._base import TextMethod, TokenBatch, merge_words

__all__ = ["TextMethod", "TokenBatch", "merge_words"]

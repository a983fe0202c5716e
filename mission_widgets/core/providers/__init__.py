"""Model providers beyond the offline demo model.

Each provider module imports its SDK only when a model is used, so importing
:mod:`mission_widgets` never imports ``openai``. ``"openai:<model>"`` strings resolve to
:class:`OpenAIModel` through the registry in :mod:`mission_widgets.core.models`.
"""

from .openai_provider import OpenAIModel

__all__ = ["OpenAIModel"]

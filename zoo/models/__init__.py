"""Model families, one folder each: config.py, model.py, weights.py, the declaration (family.py) and the
task-head classes (heads.py). Importing a folder registers its families; the order is the registry's."""

# isort: off
from . import gpt2  # noqa: F401
from . import bert  # noqa: F401
from . import llama  # noqa: F401
from . import glm  # noqa: F401
from . import nanogpt  # noqa: F401
from . import t5  # noqa: F401
from . import xlm_roberta  # noqa: F401
from . import qwen3  # noqa: F401
from . import phi3  # noqa: F401
from . import gemma2  # noqa: F401
from . import gemma3  # noqa: F401
from . import modernbert  # noqa: F401
from . import bart  # noqa: F401
from . import mbart  # noqa: F401
from . import deberta_v2  # noqa: F401

"""One thin class per node. Node ids and input names are public (../shared/NODES.md)."""

from .color_nodes import OCIOTransform
from .exr_nodes import LoadEXRSequence, SaveEXRSequence
from .gan_nodes import LoadGAN

NODE_CLASS_MAPPINGS = {
    "LM_LoadEXRSequence": LoadEXRSequence,
    "LM_SaveEXRSequence": SaveEXRSequence,
    "LM_OCIOTransform": OCIOTransform,
    "LM_LoadGAN": LoadGAN,
}
NODE_DISPLAY_NAME_MAPPINGS = {key: cls.DISPLAY_NAME for key, cls in NODE_CLASS_MAPPINGS.items()}

"""One thin class per node. Node ids and input names are public (docs/NODES.md)."""

from .color_nodes import OCIOTransform
from .common import refuse_non_finite_numbers
from .curve_nodes import CurveNode
from .exr_nodes import LoadEXRSequence, SaveEXRSequence
from .gan_nodes import LoadGAN, SampleGAN
from .invert_nodes import (
    InvertNode,
    LoadLatentsNode,
    LossMixNode,
    ReferenceBlendNode,
    SaveLatentsNode,
)
from .resynth_nodes import ResynthesizeNode
from .tune_nodes import SaveGANNode, TuneGANNode

NODE_CLASS_MAPPINGS = {
    "LM_LoadEXRSequence": LoadEXRSequence,
    "LM_SaveEXRSequence": SaveEXRSequence,
    "LM_OCIOTransform": OCIOTransform,
    "LM_LoadGAN": LoadGAN,
    "LM_SampleGAN": SampleGAN,
    "LM_LossMix": LossMixNode,
    "LM_ReferenceBlend": ReferenceBlendNode,
    "LM_Invert": InvertNode,
    "LM_SaveLatents": SaveLatentsNode,
    "LM_LoadLatents": LoadLatentsNode,
    "LM_Resynthesize": ResynthesizeNode,
    "LM_TuneGAN": TuneGANNode,
    "LM_SaveGAN": SaveGANNode,
    "LM_Curve": CurveNode,
}
for _node_class in NODE_CLASS_MAPPINGS.values():
    refuse_non_finite_numbers(_node_class)
NODE_DISPLAY_NAME_MAPPINGS = {key: cls.DISPLAY_NAME for key, cls in NODE_CLASS_MAPPINGS.items()}

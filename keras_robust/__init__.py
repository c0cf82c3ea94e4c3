"""keras-robust: noise-robust classification losses for Keras 3 at any number of classes.

    import keras_robust as kr
    model.compile(loss=kr.losses.MAEStar(num_classes=100), optimizer="sgd")
"""

from keras_robust import losses
from keras_robust.logit_bias import LogitBiasLayer, add_logit_bias, with_logit_bias
from keras_robust.losses import MAEStar

__version__ = "0.1.0"

__all__ = ["LogitBiasLayer", "MAEStar", "add_logit_bias", "losses", "with_logit_bias"]

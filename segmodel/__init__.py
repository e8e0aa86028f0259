"""The model and its data contract: U-Net, tf.data input, losses, metrics, training, export.

Load an exported model (or a run folder, or a .keras file) from your own code:

    import segmodel
    model = segmodel.load_model("out/model")          # registers our layers, safe mode on
    metadata = segmodel.load_metadata("out/model")    # classes, normalisation, bit depth, ...

Both also read gs:// and other tf.io.gfile paths. Feed the model what
`segmodel.preprocessing.model_input_np(pixels, metadata["channels"], metadata["bit_depth"],
*metadata["normalization"].values())` returns, batched: [B, H, W, C] float32.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Lazy, so that `import segmodel` stays free of TensorFlow until a model is loaded.
    if name in ("load_model", "load_metadata"):
        from segmodel import saving

        return getattr(saving, name)
    raise AttributeError(f"module 'segmodel' has no attribute {name!r}")

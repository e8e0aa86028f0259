"""The model and its data contract: U-Net, tf.data input, losses, metrics, training, export."""

"""The vocabulary every layer speaks: the model, the one exception, the observer."""

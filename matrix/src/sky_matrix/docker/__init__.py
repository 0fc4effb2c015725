"""The only package that runs `docker`: argv, mounts, labels, clean-up, and the images."""

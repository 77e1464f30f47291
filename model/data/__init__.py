"""Building training data: Stanford Dogs, Flickr, plain folders, one merged manifest."""

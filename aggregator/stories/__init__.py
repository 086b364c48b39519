"""Stories: a cluster to its canonical merged story, the feeds and the pages that publish
it, and the HTTP face that serves them."""

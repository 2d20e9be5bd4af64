"""Scripts that print figures (load, export, training throughput, the loop, mutants): the top layer, importing anything below."""

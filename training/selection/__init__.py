"""'Least certain first' for annotation's queue: the project's chosen reward model and the job
that scores pending items into annotation's priority column. Fills annotation.hooks at start."""

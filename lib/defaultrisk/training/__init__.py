"""The training job: a labelled customer table to a checked model directory."""

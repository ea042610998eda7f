"""Reports: figures of the paper's analyses, rollout animations, and the HTML page."""

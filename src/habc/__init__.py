"""habc: online improvement of flow-matching robot policies from sparse episode outcomes.

Data flows one way: env + operator -> episodes -> store -> windows + labels -> critic -> weights
-> actor -> rollout. Each stage lives in a sub-package named after its domain concept.
"""

__version__ = "0.1.0"

"""qwenlong-verl: the QwenLong-L1 long-context reasoning RL recipe as verl 0.9.1 plugins.

Importing this package is cheap: nothing here touches verl. verl loads ``qwenlong_verl.integration.plugins`` through its
``verl.plugins`` entry point, which registers every plugin.
"""

__version__ = "0.1.0"

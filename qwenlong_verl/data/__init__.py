"""Data tools: synthetic long-context DocQA (:mod:`.synth`), dataset preparation with stored prompt lengths
(:mod:`.prepare`), SFT conversion (:mod:`.sft`). The demo's tiny model is :mod:`qwenlong_verl.pipeline.tiny_model`."""

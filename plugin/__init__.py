"""The hosts: ComfyUI registration, the headless runner and CLI, and the facade nodes talk to."""

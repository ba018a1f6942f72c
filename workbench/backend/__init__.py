"""The model inside Label Studio: the project's current model served as a Label Studio ML backend, and the
training job behind Label Studio's "Start training" button.

`files` (where it keeps its state and login), `served` (the current model, `model.deployed.current_model`, loaded
once per process), `app` (the protocol, on Starlette), `serve` (the backend's process), `process` (start, stop,
status), `connect` (the backend in a Label Studio project, once), `training` (the job's record; one job at a
time), `job` (the job's frame and what it trains on; its stages are `workflow.do_training_job`'s).
Which model is current and whether a trained one may replace it are `model.deployed` and `model.guard`'s, as for
every command. Nothing is imported here, so `workflow` can start and stop the backend without loading the web
stack.
"""

"""The package every worker image installs. Importing it does nothing; import what you need from:

For a worker author (``shared.authoring`` gathers these names in one module):
    validation (typed inputs), encoding (base64 and images in), errors (the error tree), torch_errors
    (torch failures, GPU-memory release), settings (environment variables), payload (files out, within
    RunPod's payload limit), serving (``serve``: setup, then the job loop), llm (the LLM workers' contract).

The runtime that drives a worker (it never calls these itself):
    guard (each failure into the envelope), job_loop (the runpod SDK's job loop), stream_coalescing,
    logs (log lines in the SDK's shape), json_limits (strict JSON and shape limits on every job input).

Build time: weights (bakes a model's files into an image).
"""

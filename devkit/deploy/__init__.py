"""`make deploy`, `make deploy-status`, `make undeploy`: RunPod endpoints of the workers, on REST API v2."""

// The pod sandbox's process: what every pod's infrastructure container runs.
module weft.dev/harness/pause

go 1.22

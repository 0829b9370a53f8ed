#!/bin/sh
echo "coverage tools are not available in the offline build of torch_tensorrt_rtx" >&2
exit 1

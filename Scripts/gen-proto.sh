#!/usr/bin/env bash
# Regenerates Sources/SettlementModel/Generated/settlenet.pb.swift from proto/.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift (swift-protobuf 1.39.0's plugin:
# `swift build -c release --product protoc-gen-swift` in a checkout of swift-protobuf).
set -euo pipefail
cd "$(dirname "$0")/.."
plugin=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}
[ -n "$plugin" ] || { echo "gen-proto: protoc-gen-swift not found; set PROTOC_GEN_SWIFT=/path/to/it" >&2; exit 1; }
mkdir -p Sources/SettlementModel/Generated
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=proto \
  --swift_opt=Visibility=Public --swift_out=Sources/SettlementModel/Generated \
  proto/settlenet/v1/settlenet.proto
mv Sources/SettlementModel/Generated/settlenet/v1/settlenet.pb.swift Sources/SettlementModel/Generated/settlenet.pb.swift
rm -rf Sources/SettlementModel/Generated/settlenet
echo "generated Sources/SettlementModel/Generated/settlenet.pb.swift"

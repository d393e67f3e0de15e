// Package proto is the gRPC service between the immune agent and a Go check
// plugin. The .pb.go files are generated from check.proto with protoc and
// protoc-gen-go v1.36.6 and protoc-gen-go-grpc v1.3.0: the generators whose
// output the google.golang.org/grpc that go-plugin requires (v1.61) accepts.
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative check.proto

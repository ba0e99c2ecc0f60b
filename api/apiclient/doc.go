// Package apiclient is a Go client of the service generated from
// api/openapi.yaml by oapi-codegen. It exists to prove that the document
// is usable by generators (api/apiclient_test.go calls the real router
// with it), and callers in Go may use it.
//
// After changing api/openapi.yaml, regenerate it with go generate.
package apiclient

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -generate types,client -package apiclient -o client.gen.go ../openapi.yaml

package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// --help and --version are answers, not errors (exit 0); an unknown flag
// is an error (exit 1).
func TestFlags(t *testing.T) {
	assert.NoError(t, run(t.Context(), []string{"--help"}))
	assert.NoError(t, run(t.Context(), []string{"-h"}))
	assert.NoError(t, run(t.Context(), []string{"--version"}))
	assert.ErrorContains(t, run(t.Context(), []string{"--nosuch"}), "nosuch")
}

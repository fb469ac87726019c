package tasks

import (
	"fmt"

	"github.com/opsworker/opsworker/ops"
)

// The domain's types live in the public package ops; these names keep the
// pipeline's code short.

// Operation kinds (task types).
const (
	TypeCDNPurge              = ops.KindCDNPurge
	TypeCDNInvalidate         = ops.KindCDNInvalidate
	TypeCDNDistributionEnsure = ops.KindCDNDistributionEnsure
	TypeServerInstall         = ops.KindServerInstall
	TypeServerRescue          = ops.KindServerRescue
	TypeInstanceSnapshot      = ops.KindInstanceSnapshot
	TypeVPSSnapshot           = ops.KindVPSSnapshot
	TypeASGScale              = ops.KindASGScale
	TypeInstanceResize        = ops.KindInstanceResize
)

// Envelope and validation types.
type (
	Envelope        = ops.Envelope
	ValidationError = ops.ValidationError
)

const (
	DefaultAccount = ops.DefaultAccount
	MaxPurgeFiles  = ops.MaxPurgeFiles
)

var (
	// DecodeEnvelope decodes a task payload strictly (ops.DecodeEnvelope).
	DecodeEnvelope = ops.DecodeEnvelope
	decodeParams   = ops.DecodeParams
)

func invalid(field, format string, args ...any) error {
	return &ops.ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

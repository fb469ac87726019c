// Package providers holds what every provider client shares: the single
// error type ([Error]) that task handlers inspect with errors.As, and the
// call ([Do], [Base]) that classifies every failure with package
// httpclass, the rule webhook delivery follows too.
//
// One sub-package per provider API lives below it (ucdn, later leaseweb,
// ionos, edgio), each with its simulator in <name>/<name>sim. Provider
// packages know nothing about asynq or the operation record.
package providers

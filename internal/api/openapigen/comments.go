package main

import (
	"errors"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
)

// comments reads the doc comments of the module's Go types and their
// fields, which become the schemas' descriptions.
type comments struct {
	root, module string

	mu   sync.Mutex
	pkgs map[string]map[string]string // import path → "Type" or "Type.Field" → text
}

// newComments finds the module that holds dir (its go.mod).
func newComments(dir string) (*comments, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for line := range strings.SplitSeq(string(b), "\n") {
				if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
					return &comments{root: dir, module: strings.Trim(strings.TrimSpace(m), `"`), pkgs: map[string]map[string]string{}}, nil
				}
			}
			return nil, fmt.Errorf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// selfDir is this command's directory in the module: its types (package
// main) describe the result objects.
const selfDir = "internal/api/openapigen"

// lookup returns the comment of type t (field "") or of its field.
// Types outside the module have none.
func (c *comments) lookup(t reflect.Type, field string) string {
	pkg := t.PkgPath()
	if pkg == "main" {
		pkg = c.module + "/" + selfDir
	}
	if t.Name() == "" || (pkg != c.module && !strings.HasPrefix(pkg, c.module+"/")) {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.pkgs[pkg]
	if !ok {
		m = c.parse(filepath.Join(c.root, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(pkg, c.module), "/"))))
		c.pkgs[pkg] = m
	}
	key := t.Name()
	if field != "" {
		key += "." + field
	}
	return m[key]
}

// parse collects the comments of the exported types and fields of the
// package in dir (its test files left out). A type's comment is its first
// sentence; a field's is all of it.
func (c *comments) parse(dir string) map[string]string {
	out := map[string]string{}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	var files []*ast.File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return out
	}
	pkg, err := doc.NewFromFiles(fset, files, "", doc.AllDecls|doc.PreserveAST)
	if err != nil {
		return out
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				text := ts.Doc.Text()
				if text == "" && len(gd.Specs) == 1 {
					text = gd.Doc.Text()
				}
				out[ts.Name.Name] = pkg.Synopsis(text)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fl := range st.Fields.List {
					text := fl.Doc.Text()
					if text == "" {
						text = fl.Comment.Text()
					}
					for _, n := range fl.Names {
						if n.IsExported() && text != "" {
							out[ts.Name.Name+"."+n.Name] = paragraphs(text)
						}
					}
				}
			}
		}
	}
	return out
}

// paragraphs joins the lines of each paragraph of a comment.
func paragraphs(text string) string {
	var out []string
	for p := range strings.SplitSeq(strings.TrimSpace(text), "\n\n") {
		out = append(out, strings.Join(strings.Fields(p), " "))
	}
	return strings.Join(out, "\n\n")
}

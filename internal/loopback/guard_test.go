package loopback

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// closeThenReuse are the names the close-then-reuse helpers had; none may
// come back.
var closeThenReuse = []string{"FreeAddr", "DeadAddr", "FreePort", "freeAddr", "freePort", "freeURL", "deadPort"}

// TestNoPortIsFoundFreeAndBoundLater reads every Go file of the module and
// fails on a port found free by closing a socket and used after the close
// (the port is anybody's by then: hold it with this package instead), and
// on the old helpers' names. The check is syntactic, in one function: a
// listener's Close() that is not deferred, and after it a use of its Addr()
// or of a variable set from it; or a deferred Close() and a return of its
// address.
func TestNoPortIsFoundFreeAndBoundLater(t *testing.T) {
	root := moduleRoot(t)
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		found = append(found, checkFile(t, root, path)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
}

// TestGuardFindsThePattern: the guard sees the old FreeAddr and an
// old-helper name.
func TestGuardFindsThePattern(t *testing.T) {
	src := `package p
import "net"
func free() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
func deferred() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return ln.Addr().String()
}
func ok() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := net.Dial("tcp", ln.Addr().String())
	c.Close()
	ln.Close()
}
func FreeAddr() {}
`
	path := filepath.Join(t.TempDir(), "p.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checkFile(t, filepath.Dir(path), path), "\n")
	for _, want := range []string{"p.go:6:", "p.go:12:", "p.go:21: FreeAddr"} {
		if !strings.Contains(got, want) {
			t.Errorf("the guard did not report %s", want)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 3 {
		t.Errorf("the guard reported %d places, want 3:\n%s", n, got)
	}
}

// moduleRoot is the folder of the nearest go.mod above this package.
func moduleRoot(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above this package")
		}
		dir = parent
	}
}

// checkFile returns the places in path that break the rule.
func checkFile(t *testing.T, root, path string) []string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(root, path)
	var out []string
	report := func(pos token.Pos, msg string) {
		out = append(out, fmt.Sprintf("%s:%d: %s; hold the port with internal/loopback", rel, fset.Position(pos).Line, msg))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		var body *ast.BlockStmt
		switch n := n.(type) {
		case *ast.Ident:
			if slices.Contains(closeThenReuse, n.Name) {
				report(n.Pos(), n.Name+" is a close-then-reuse helper")
			}
		case *ast.FuncDecl:
			body = n.Body
		case *ast.FuncLit:
			body = n.Body
		}
		if body != nil {
			for _, pos := range closedThenUsed(body) {
				report(pos, "a listener closed and its address used after")
			}
		}
		return true
	})
	return out
}

// closedThenUsed returns the positions of the Close calls in body, outside
// defers and closures, of a listener whose address is used after them.
func closedThenUsed(body *ast.BlockStmt) []token.Pos {
	var out []token.Pos
	for v := range listeners(body) {
		derived := fromAddr(body, v)
		for _, pos := range directCloses(body, v) {
			if usedAfter(body, v, derived, pos) {
				out = append(out, pos)
			}
		}
		if closesDeferred(body, v) {
			out = append(out, returnsAddr(body, v, derived)...)
		}
	}
	return out
}

// closesDeferred reports whether body defers v.Close().
func closesDeferred(body *ast.BlockStmt, v string) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.DeferStmt:
			found = found || isCall(n.Call, v, "Close")
		}
		return !found
	})
	return found
}

// returnsAddr returns where body, outside closures, returns v.Addr() or a
// variable set from it.
func returnsAddr(body *ast.BlockStmt, v string, derived map[string]bool) []token.Pos {
	var out []token.Pos
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false
		case *ast.ReturnStmt:
			if usedAfter(&ast.BlockStmt{List: []ast.Stmt{n}}, v, derived, n.Pos()-1) {
				out = append(out, n.Pos())
			}
		}
		return true
	})
	return out
}

// listeners names the variables body sets from a Listen call.
func listeners(body *ast.BlockStmt) map[string]bool {
	out := map[string]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		a, ok := n.(*ast.AssignStmt)
		if !ok || len(a.Rhs) != 1 {
			return true
		}
		if call, ok := a.Rhs[0].(*ast.CallExpr); ok && strings.HasPrefix(selName(call.Fun), "Listen") {
			if id, ok := a.Lhs[0].(*ast.Ident); ok {
				out[id.Name] = true
			}
		}
		return true
	})
	return out
}

// fromAddr names the variables body sets from an expression with v.Addr().
func fromAddr(body *ast.BlockStmt, v string) map[string]bool {
	out := map[string]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok && len(a.Rhs) == 1 && isAddrOf(a.Rhs[0], v) {
			for _, l := range a.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
					out[id.Name] = true
				}
			}
		}
		return true
	})
	return out
}

// isAddrOf reports whether e is v.Addr() or read from it, such as
// v.Addr().String() or v.Addr().(*net.TCPAddr).Port.
func isAddrOf(e ast.Expr, v string) bool {
	for {
		switch x := e.(type) {
		case *ast.CallExpr:
			if isCall(x, v, "Addr") {
				return true
			}
			sel, ok := x.Fun.(*ast.SelectorExpr)
			if !ok {
				return false
			}
			e = sel.X
		case *ast.SelectorExpr:
			e = x.X
		case *ast.TypeAssertExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return false
		}
	}
}

// directCloses returns where body calls v.Close() outside defers and
// closures.
func directCloses(body *ast.BlockStmt, v string) []token.Pos {
	var out []token.Pos
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.DeferStmt, *ast.FuncLit:
			return false
		case *ast.CallExpr:
			if isCall(n, v, "Close") {
				out = append(out, n.Pos())
			}
		}
		return true
	})
	return out
}

// usedAfter reports whether body uses v.Addr() or a derived variable after
// pos.
func usedAfter(body *ast.BlockStmt, v string, derived map[string]bool, pos token.Pos) bool {
	used := false
	ast.Inspect(body, func(n ast.Node) bool {
		if n == nil || n.Pos() <= pos {
			return !used
		}
		if id, ok := n.(*ast.Ident); ok && derived[id.Name] {
			used = true
		}
		if e, ok := n.(ast.Expr); ok && callsMethod(e, v, "Addr") {
			used = true
		}
		return !used
	})
	return used
}

// callsMethod reports whether e holds a call v.method().
func callsMethod(e ast.Node, v, method string) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && isCall(call, v, method) {
			found = true
		}
		return !found
	})
	return found
}

// isCall reports whether call is v.method().
func isCall(call *ast.CallExpr, v, method string) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != method {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == v
}

// selName is the name a call's function is selected by (Listen of
// net.Listen), or "".
func selName(fun ast.Expr) string {
	if sel, ok := fun.(*ast.SelectorExpr); ok {
		return sel.Sel.Name
	}
	return ""
}

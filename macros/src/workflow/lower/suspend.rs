//! Lowering an await: the block ends with a suspension, and the code after
//! it starts the block that resumes; `continue_as_new`; state names.

use super::*;

impl Lowerer<'_> {
    pub(super) fn suspend_at(&mut self, e: Expr, binding: Binding) {
        let (await_expr, question) = match e {
            Expr::Await(a) => (a, None),
            Expr::Try(t) => match *t.expr {
                Expr::Await(a) => (a, Some(t.question_token)),
                _ => return,
            },
            Expr::Paren(p) => return self.suspend_at(*p.expr, binding),
            _ => return,
        };
        let span = await_expr.await_token.span();
        let kind = match classify(self.errors, &await_expr.base, self.ctx.as_ref()) {
            Some(Awaited::Suspend(kind)) => *kind,
            Some(Awaited::ContinueAsNew(call)) => {
                self.continue_as_new(*call, span);
                return;
            }
            None => {
                self.pin = None;
                return;
            }
        };
        let (name, variant) = self.step_name(&kind, span);
        let (outcome_path, (outcome_ty, ok_ty), args) = match &kind {
            SuspendKind::Activity { path, args } => (
                activity_type(path),
                activity_outcome_types(path),
                args.clone(),
            ),
            SuspendKind::Ctx { method, call, ty } => (
                proc_macro2::TokenStream::new(),
                ctx_outcome_types(*method, ty.as_deref()),
                call.args.iter().cloned().collect(),
            ),
        };
        let mut uses = BTreeSet::new();
        let mut fails = false;
        for a in &args {
            let acc = expr_access(a, &self.scopes);
            uses.extend(acc.uses);
            fails |= acc.fails;
        }
        let id = self.cfg.suspends.len();
        let resume = self.new_block();
        self.cfg.suspends.push(Suspend {
            name,
            variant,
            kind,
            resume,
            span,
            outcome_path,
        });
        self.terminate(Terminator::Suspend(id), uses);
        self.mark_fail(fails);
        self.enter(resume);

        let slot = format_ident!("__sf_out_{}", id, span = Span::mixed_site());
        let mut outcome: Expr = syn::parse_quote_spanned!(span=>
            ::steadfast::__private::slot(&mut #slot)
        );
        let derived_ty = match &question {
            Some(q) => {
                outcome = Expr::Try(syn::ExprTry {
                    attrs: Vec::new(),
                    expr: Box::new(outcome),
                    question_token: *q,
                });
                ok_ty
            }
            None => outcome_ty,
        };
        match binding {
            Binding::Let {
                attrs,
                pat,
                diverge,
            } => {
                let mut bindings = pattern_bindings(&pat);
                let single =
                    matches!(&pat, Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none());
                if single && let Some(b) = bindings.first_mut() {
                    b.ty = Some(derived_ty);
                }
                let stmt = Stmt::Local(Local {
                    attrs,
                    let_token: Token![let](span),
                    pat,
                    init: Some(LocalInit {
                        eq_token: Token![=](span),
                        expr: Box::new(outcome),
                        diverge,
                    }),
                    semi_token: Token![;](span),
                });
                let access = stmt_access(&stmt, &self.scopes);
                let jumps = jumps_of(&stmt, &self.loops);
                let mut decls = Vec::new();
                for b in bindings {
                    decls.push(self.declare(b.ident, b.ty, b.mutable, VarOrigin::Let));
                }
                self.cfg.blocks[self.cur].pieces.push(Piece {
                    stmt,
                    uses: access.uses,
                    may_defs: access.assigns,
                    defs: decls.iter().copied().collect(),
                    decls,
                    kills: BTreeSet::new(),
                    loops: Rc::clone(&self.loops),
                    jumps,
                    may_fail: question.is_some() || access.fails,
                    may_return: access.returns,
                    continues: false,
                });
            }
            Binding::Place(place) => {
                let stmt: Stmt = syn::parse_quote_spanned!(span=> #place = #outcome;);
                self.plain(stmt);
            }
            Binding::Var(v) => {
                let name = self.assign_target(v, span);
                let stmt: Stmt = syn::parse_quote_spanned!(span=> #name = #outcome;);
                self.plain(stmt);
            }
            Binding::Discard => {
                let stmt: Stmt = syn::parse_quote_spanned!(span=> #outcome;);
                self.plain(stmt);
            }
            Binding::Return => {
                let stmt: Stmt = syn::parse_quote_spanned!(span=> return #outcome;);
                self.plain(stmt);
            }
        }
    }

    /// `ctx.continue_as_new(input).await`: the run ends here and starts
    /// again with `input`; nothing after it runs.
    pub(super) fn continue_as_new(&mut self, call: syn::ExprMethodCall, span: Span) {
        let temp = Ident::new("__sf_continue", span);
        let stmt: Stmt = syn::parse_quote_spanned!(span=> let #temp = #call;);
        self.plain(stmt);
        // Opaque to the rewriter: this `return` is the step function's own.
        let done = quote::quote_spanned! {span=>
            return ::core::result::Result::Ok(
                ::steadfast::__private::Transition::ContinueAsNew { input: #temp.input }
            );
        };
        let piece = Stmt::Expr(Expr::Verbatim(done), None);
        self.cfg.blocks[self.cur].pieces.push(Piece {
            stmt: piece,
            uses: BTreeSet::new(),
            may_defs: BTreeSet::new(),
            defs: BTreeSet::new(),
            decls: Vec::new(),
            kills: BTreeSet::new(),
            loops: Rc::clone(&self.loops),
            jumps: Vec::new(),
            may_fail: false,
            may_return: false,
            continues: true,
        });
        self.diverge();
    }

    /// The stable name and variant identifier of a new suspension.
    pub(super) fn step_name(&mut self, kind: &SuspendKind, span: Span) -> (String, Ident) {
        let (name, variant_text, name_span) = match self.pin.take() {
            Some((pinned, pin_span)) => {
                let v = camel_case(&pinned);
                (pinned, v, pin_span)
            }
            None => {
                let last_ident = |path: &syn::Path| {
                    path.segments
                        .last()
                        .map(|s| s.ident.to_string().trim_start_matches("r#").to_owned())
                        .unwrap_or_default()
                };
                let type_ident = |ty: &Option<Box<Type>>| match ty.as_deref() {
                    Some(Type::Path(tp)) => snake_case(&last_ident(&tp.path)),
                    _ => String::new(),
                };
                let base = match kind {
                    SuspendKind::Activity { path, .. } => last_ident(path),
                    SuspendKind::Ctx { method, ty, .. } => match method {
                        CtxMethod::Sleep => "sleep".to_owned(),
                        CtxMethod::Signal | CtxMethod::SignalWithin => {
                            format!("signal_{}", type_ident(ty))
                        }
                        CtxMethod::Child => format!("child_{}", type_ident(ty)),
                    },
                };
                let n = self.step_counts.entry(base.clone()).or_insert(0);
                let name = format!("{base}#{n}");
                let v = format!("{}{n}", camel_case(&base));
                *n += 1;
                (name, v, span)
            }
        };
        if name == "start" || variant_text == "Start" {
            self.errors.at(
                name_span,
                "the step name `start` is reserved for the start state",
            );
        }
        if !self.step_names.insert(name.clone())
            || self.cfg.suspends.iter().any(|s| s.variant == variant_text)
        {
            self.errors.at(
                name_span,
                format!(
                    "two awaits are named `{name}`; give one another name with `#[step(\"..\")]`"
                ),
            );
        }
        (name, Ident::new(&variant_text, span))
    }
}

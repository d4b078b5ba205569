# Objects built the way packages build them, for the tests of deep sharing
# and fetch().

# As R6 builds its objects: fields in one environment, methods in another
# that binds `self` (whose parent is where the class was defined), an
# active binding and a locked one.
make_r6_style_store <- function(values) {
  self <- new.env(parent = emptyenv())
  methods <- new.env(parent = globalenv())
  methods$self <- self
  self$values <- values
  self$total <- eval(quote(function() sum(self$values)), methods)
  self$scaled <- eval(quote(function(k) self$values[1:5] * k), methods)
  makeActiveBinding("size", eval(quote(function() length(self$values)), methods), self)
  lockBinding("total", self)
  class(self) <- "store"
  self
}

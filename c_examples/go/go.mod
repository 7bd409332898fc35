module rmsprop.example/quadratic

go 1.19
